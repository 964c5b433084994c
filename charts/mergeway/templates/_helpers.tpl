{{- define "mergeway.fullname" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mergeway.labels" -}}
app.kubernetes.io/name: mergeway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "mergeway.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- /* Cross-field checks the schema cannot word clearly. */ -}}
{{- define "mergeway.validate" -}}
{{- if not (or .Values.redis.existingSecret .Values.redis.password) -}}
{{- fail "redis: set redis.existingSecret (a Secret with the Redis password) or redis.password; Mergeway's Redis must require a password" -}}
{{- end -}}
{{- if not (kindIs "slice" .Values.policy.rules) -}}
{{- fail "policy.rules: a list of rules is required (which repositories may deploy where; see the chart README)" -}}
{{- end -}}
{{- end -}}

{{- define "mergeway.redisSecret" -}}
{{- .Values.redis.existingSecret | default (printf "%s-redis" (include "mergeway.fullname" .)) -}}
{{- end -}}

{{- /* Settings both processes read. REDIS_URL gets the password from the Secret via $(VAR) expansion. */ -}}
{{- define "mergeway.env" -}}
{{- $parts := splitList "://" .Values.redis.url -}}
- name: MERGEWAY_REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "mergeway.redisSecret" . }}, key: {{ .Values.redis.passwordKey }}}
- name: REDIS_URL
  value: {{ printf "%s://:$(MERGEWAY_REDIS_PASSWORD)@%s" (first $parts) (last $parts) | quote }}
- name: MERGEWAY_FORGES
  value: {{ join "," .Values.forges | quote }}
- name: GITHUB_API_URL
  value: {{ .Values.githubApiUrl | quote }}
- name: GITLAB_URL
  value: {{ .Values.gitlabUrl | quote }}
- name: MERGEWAY_PUBLIC_URL
  value: {{ .Values.publicUrl | quote }}
- name: MERGEWAY_POLICY_FILE
  value: /etc/mergeway/policy/policy.yaml
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{- define "mergeway.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "mergeway.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end -}}
