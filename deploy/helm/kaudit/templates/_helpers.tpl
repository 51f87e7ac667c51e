{{/* Names: <release>-kaudit-<component>, or kaudit-<component> when the release is called kaudit. */}}
{{- define "kaudit.fullname" -}}
{{- if contains "kaudit" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-kaudit" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kaudit.name" -}}
{{- printf "%s-%s" (include "kaudit.fullname" .root) .component -}}
{{- end -}}

{{- define "kaudit.selectorLabels" -}}
app.kubernetes.io/name: kaudit
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kaudit.labels" -}}
{{ include "kaudit.selectorLabels" . }}
app.kubernetes.io/part-of: kaudit
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "kaudit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kaudit.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kaudit.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .component (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{/* A policy file: the override from values, else the chart's copy of policies/<file>. */}}
{{- define "kaudit.policy" -}}
{{- $override := index .root.Values.policies .key -}}
{{- if $override -}}
{{- $override -}}
{{- else -}}
{{- .root.Files.Get (printf "files/policies/%s" .file) -}}
{{- end -}}
{{- end -}}

{{- define "kaudit.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kaudit.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Environment every service reads: brokers, Kafka security, log level. */}}
{{- define "kaudit.kafkaEnv" -}}
- name: KAFKA_BROKERS
  value: {{ .Values.kafka.brokers | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if .Values.kafka.ssl }}
- name: KAFKA_SSL
  value: "true"
{{- end }}
{{- if .Values.kafka.caSecret.name }}
- name: KAFKA_SSL_CA_FILE
  value: /etc/kaudit/kafka-ca/{{ .Values.kafka.caSecret.key }}
{{- end }}
{{- if .Values.kafka.clientCertSecret }}
- name: KAFKA_SSL_CERT_FILE
  value: /etc/kaudit/kafka-client/tls.crt
- name: KAFKA_SSL_KEY_FILE
  value: /etc/kaudit/kafka-client/tls.key
{{- end }}
{{- if .Values.kafka.sasl.mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ .Values.kafka.sasl.username | quote }}
- name: KAFKA_SASL_PASSWORD_FILE
  value: /etc/kaudit/kafka-sasl/{{ .Values.kafka.sasl.passwordSecret.key }}
{{- end }}
{{- end -}}

{{- define "kaudit.kafkaVolumeMounts" -}}
- { name: tmp, mountPath: /tmp }
{{- if .Values.kafka.caSecret.name }}
- { name: kafka-ca, mountPath: /etc/kaudit/kafka-ca, readOnly: true }
{{- end }}
{{- if .Values.kafka.clientCertSecret }}
- { name: kafka-client, mountPath: /etc/kaudit/kafka-client, readOnly: true }
{{- end }}
{{- if .Values.kafka.sasl.mechanism }}
- { name: kafka-sasl, mountPath: /etc/kaudit/kafka-sasl, readOnly: true }
{{- end }}
{{- end -}}

{{- define "kaudit.kafkaVolumes" -}}
- name: tmp
  emptyDir: { sizeLimit: 64Mi }
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret.name }}
    items: [{ key: {{ .Values.kafka.caSecret.key }}, path: {{ .Values.kafka.caSecret.key }} }]
{{- end }}
{{- if .Values.kafka.clientCertSecret }}
- name: kafka-client
  secret:
    secretName: {{ .Values.kafka.clientCertSecret }}
    items: [{ key: tls.crt, path: tls.crt }, { key: tls.key, path: tls.key }]
{{- end }}
{{- if .Values.kafka.sasl.mechanism }}
- name: kafka-sasl
  secret:
    secretName: {{ required "kafka.sasl.passwordSecret.name is required with kafka.sasl.mechanism" .Values.kafka.sasl.passwordSecret.name }}
    items: [{ key: {{ .Values.kafka.sasl.passwordSecret.key }}, path: {{ .Values.kafka.sasl.passwordSecret.key }} }]
{{- end }}
{{- end -}}

{{/* Elasticsearch connection for the indexer. */}}
{{- define "kaudit.esEnv" -}}
- name: ES_NODE
  value: {{ .Values.elasticsearch.node | quote }}
{{- if .Values.elasticsearch.apiKeySecret.name }}
- name: ES_API_KEY
  valueFrom:
    secretKeyRef: { name: {{ .Values.elasticsearch.apiKeySecret.name }}, key: {{ .Values.elasticsearch.apiKeySecret.key }} }
{{- end }}
{{- if .Values.elasticsearch.username }}
- name: ES_USERNAME
  value: {{ .Values.elasticsearch.username | quote }}
- name: ES_PASSWORD
  valueFrom:
    secretKeyRef: { name: {{ required "elasticsearch.passwordSecret.name is required with elasticsearch.username" .Values.elasticsearch.passwordSecret.name }}, key: {{ .Values.elasticsearch.passwordSecret.key }} }
{{- end }}
{{- if .Values.elasticsearch.caSecret.name }}
- name: ES_CA_FILE
  value: /etc/kaudit/es-ca/{{ .Values.elasticsearch.caSecret.key }}
{{- end }}
{{- end -}}

{{/* Pod-spec fields shared by every component. */}}
{{- define "kaudit.podCommon" -}}
serviceAccountName: {{ include "kaudit.serviceAccountName" .root }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "kaudit.podSecurityContext" .root | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Probes on the ops port: alive = the process answers; ready = it can take work now. */}}
{{- define "kaudit.probes" -}}
livenessProbe:
  httpGet: { path: /healthz, port: {{ .port }}, scheme: {{ .scheme | default "HTTP" }} }
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 6
readinessProbe:
  httpGet: { path: /readyz, port: {{ .port }}, scheme: {{ .scheme | default "HTTP" }} }
  periodSeconds: 5
  timeoutSeconds: 5
  failureThreshold: 2
startupProbe:
  httpGet: { path: /healthz, port: {{ .port }}, scheme: {{ .scheme | default "HTTP" }} }
  periodSeconds: 5
  failureThreshold: 60
{{- end -}}
