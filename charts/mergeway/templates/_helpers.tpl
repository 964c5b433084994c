{{- define "mergeway.fullname" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mergeway.labels" -}}
app.kubernetes.io/name: mergeway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "mergeway.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "mergeway.env" -}}
- name: REDIS_URL
  value: {{ .Values.redisUrl | quote }}
- name: MERGEWAY_FORGES
  value: {{ join "," .Values.forges | quote }}
- name: GITHUB_API_URL
  value: {{ .Values.githubApiUrl | quote }}
- name: GITLAB_URL
  value: {{ .Values.gitlabUrl | quote }}
- name: MERGEWAY_PUBLIC_URL
  value: {{ .Values.publicUrl | quote }}
- name: MERGEWAY_CLUSTERS
  value: {{ $pairs := list }}{{ range $name, $ctx := .Values.clusters }}{{ $pairs = append $pairs (printf "%s=%s" $name $ctx) }}{{ end }}{{ join "," $pairs | quote }}
- name: KUBECONFIG
  value: /etc/mergeway/kubeconfig
{{- if .Values.policy }}
- name: MERGEWAY_POLICY_FILE
  value: /etc/mergeway/policy.yaml
{{- end }}
{{- end -}}
