{{/* Names and labels. */}}
{{- define "inventory.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "inventory.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "inventory.labels" -}}
{{ include "inventory.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: inventory
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "inventory.secretName" -}}
{{- if .Values.secrets.create -}}
{{ include "inventory.fullname" . }}-secrets
{{- else -}}
{{ required "secrets.existingSecret (a Secret of settings, one key each) is required" .Values.secrets.existingSecret }}
{{- end -}}
{{- end -}}

{{- define "inventory.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "inventory.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{- define "inventory.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The pod spec every inventory process shares; .component and .args come with the call. */}}
{{- define "inventory.podSpec" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "inventory.serviceAccountName" $root }}
# No process talks to the Kubernetes API (IRSA mounts its own token when annotated).
automountServiceAccountToken: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: {{ .component }}
    image: {{ include "inventory.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      # The image's defaults, then the chart's settings; the Secret's files (one per setting,
      # named like celery__broker_url) win over both.
      - name: INVENTORY_CONFIG
        value: /app/config/default.yaml,/etc/inventory/config/inventory.yaml
      - name: INVENTORY_SECRETS_DIR
        value: /etc/inventory/secrets
      - name: INVENTORY_HEALTH__HEARTBEAT_PATH
        value: /tmp/inventory.alive
      - name: INVENTORY_HEALTH__INTERVAL_SECONDS
        value: {{ $root.Values.health.intervalSeconds | quote }}
      - name: INVENTORY_HEALTH__MAX_AGE_SECONDS
        value: {{ $root.Values.health.maxAgeSeconds | quote }}
    {{- with .ports }}
    ports:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .probes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    resources:
      {{- toYaml .resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/inventory/config
        readOnly: true
      - name: secrets
        mountPath: /etc/inventory/secrets
        readOnly: true
      - name: tmp
        mountPath: /tmp
volumes:
  - name: config
    configMap:
      name: {{ include "inventory.fullname" $root }}-config
  - name: secrets
    secret:
      secretName: {{ include "inventory.secretName" $root }}
      defaultMode: 0440  # group-readable: fsGroup is the process group
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- end -}}

{{/* Liveness from the heartbeat file: the working loop touches it, no broker is asked. */}}
{{- define "inventory.heartbeatProbe" -}}
livenessProbe:
  exec:
    command: ["inventory", "health"]
  initialDelaySeconds: 30
  periodSeconds: 30
  timeoutSeconds: 10
  failureThreshold: 3
{{- end -}}
