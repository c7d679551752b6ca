{{/* The daemon's own vulnerability database updates (values: vulnerabilityDatabase). Each renders nothing without
urls, so the defaults stay equal to the kustomize base. */}}

{{- define "rootscan.vulnDBArgs" -}}
{{- with .Values.vulnerabilityDatabase }}
{{- if .urls }}
- {{ printf "--db=%s/db" $.Values.stateDir | quote }}
{{- range .urls }}
- {{ printf "--db-url=%s" . | quote }}
{{- end }}
- {{ printf "--db-refresh=%s" (toString .refresh) | quote }}
{{- if or .caSecret .caConfigMap }}
- {{ printf "--db-ca-file=/etc/rootscan-db-ca/%s" .caKey | quote }}
{{- end }}
{{- if .insecureHTTP }}
- --db-insecure-http
{{- end }}
{{- with .checksumSuffix }}
- {{ printf "--db-checksum-suffix=%s" . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The mirror's CA, read-only, outside /etc/rootscan (a mount point cannot be made inside the read-only config
volume). */}}
{{- define "rootscan.vulnDBVolumeMounts" -}}
{{- with .Values.vulnerabilityDatabase }}
{{- if and .urls (or .caSecret .caConfigMap) }}
- name: db-ca
  mountPath: /etc/rootscan-db-ca
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{- define "rootscan.vulnDBVolumes" -}}
{{- with .Values.vulnerabilityDatabase }}
{{- if and .urls .caSecret }}
- name: db-ca
  secret:
    secretName: {{ .caSecret }}
{{- else if and .urls .caConfigMap }}
- name: db-ca
  configMap:
    name: {{ .caConfigMap }}
{{- end }}
{{- end }}
{{- end -}}
