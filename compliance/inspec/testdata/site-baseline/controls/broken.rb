control 'site-90' do
  title 'broken on purpose'
  describe file('/x' do
end

control "site-91" do
end
