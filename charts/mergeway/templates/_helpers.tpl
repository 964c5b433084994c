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

{{- /* Settings both processes read. No secret is an environment variable: every one is a file in
the secrets volume (mergeway.secretsVolume), which the process reads once at start, because a
variable stays readable in /proc/<pid>/environ for the life of the process. */ -}}
{{- define "mergeway.env" -}}
- name: MERGEWAY_SECRETS_DIR
  value: /etc/mergeway/secrets
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
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

{{- /* The pod's secrets as files named like their variables: the component's own Secret (its keys
are variable names) and the Redis password as MERGEWAY_REDIS_PASSWORD, readable by the pod's group only. */ -}}
{{- define "mergeway.secretsVolume" -}}
- name: secrets
  projected:
    defaultMode: 288  # 0440: the owner (root) and the pod's fsGroup
    sources:
      - secret: {name: {{ .secret }}}
      - secret:
          name: {{ include "mergeway.redisSecret" .root }}
          items: [{key: {{ .root.Values.redis.passwordKey }}, path: MERGEWAY_REDIS_PASSWORD}]
{{- end -}}
