package fsaccess

// openNonblock is 0 on Windows, where no file blocks an open for reading the way a Unix FIFO does.
const openNonblock = 0
