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
{{- include "mergeway.validateOwnNamespace" . -}}
{{- end -}}

{{- /* No repository may write into the namespace Mergeway runs in: with its ConfigMap (policy,
       kubeconfig) or its worker Deployment rewritten, a merge would grant itself everything. The
       service refuses the same at start-up (MERGEWAY_OWN_NAMESPACE, mergeway/policy.py); here the
       install stops before anything runs. Globs as the policy reads them (fnmatch: * ? [seq] [!seq]);
       a rule without namespaces grants every namespace. */ -}}
{{- define "mergeway.validateOwnNamespace" -}}
{{- $own := .Release.Namespace -}}
{{- range $i, $rule := .Values.policy.rules -}}
{{- $globs := $rule.namespaces | default (list "*") -}}
{{- if kindIs "string" $globs -}}{{- $globs = list $globs -}}{{- end -}}
{{- range $globs -}}
{{- $re := regexQuoteMeta (toString .) | replace "\\*" ".*" | replace "\\?" "." | replace "\\[!" "[^" | replace "\\[" "[" | replace "\\]" "]" -}}
{{- if regexMatch (printf "^(?:%s)$" $re) $own -}}
{{- fail (printf "policy.rules[%d]: namespace %q matches %q, the namespace Mergeway is installed in: a repository could then rewrite Mergeway's own ConfigMap (policy, kubeconfig) or its worker. Install Mergeway in a namespace of its own that no rule grants, or list the namespaces this rule grants so that none matches it." $i (toString .) $own) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if has $own (.Values.rbac.namespaces | default list) -}}
{{- fail (printf "rbac.namespaces: %q is the namespace Mergeway is installed in; the worker must not be able to deploy there (it could rewrite its own policy and Deployment). Deploy into other namespaces." $own) -}}
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
- name: MERGEWAY_OWN_NAMESPACE
  valueFrom:
    fieldRef: {fieldPath: metadata.namespace}
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

{{- /* Egress rules both pods share, by destination, never by port alone: a port open to every address
       lets a pod reach cloud metadata, other tenants' services and anything else listening on it. */ -}}
{{- define "mergeway.egress.dns" -}}
- to: {{- toYaml .dns.to | nindent 4 }}
  ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
{{- end -}}
{{- define "mergeway.egress.redis" -}}
- to: {{- toYaml .redis.to | nindent 4 }}
  ports: [{protocol: TCP, port: {{ .redis.port }}}]
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
