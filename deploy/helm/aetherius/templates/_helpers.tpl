{{/* Names. */}}
{{- define "aetherius.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aetherius.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "aetherius.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "aetherius.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aetherius.configMapName" -}}
{{- printf "%s-config" (include "aetherius.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aetherius.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "aetherius.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: aetherius
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one role: (dict "root" $ "component" "event-watcher"). */}}
{{- define "aetherius.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aetherius.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* ServiceAccount names per role. */}}
{{- define "aetherius.sa.eventWatcher" -}}
{{- default (printf "%s-event-watcher" (include "aetherius.fullname" .)) .Values.serviceAccount.name -}}
{{- end -}}
{{- define "aetherius.sa.orchestrator" -}}
{{- default (printf "%s-orchestrator" (include "aetherius.fullname" .)) .Values.orchestrator.serviceAccountName -}}
{{- end -}}
{{- define "aetherius.sa.api" -}}
{{- default (printf "%s-api" (include "aetherius.fullname" .)) .Values.api.serviceAccountName -}}
{{- end -}}
{{- define "aetherius.sa.embedded" -}}
{{- default (include "aetherius.fullname" .) .Values.embedded.serviceAccountName -}}
{{- end -}}

{{/* The image of a role: (dict "root" $ "role" .Values.eventWatcher). */}}
{{- define "aetherius.image" -}}
{{- $repo := default .root.Values.image.repository .role.image.repository -}}
{{- $tag := default (default .root.Chart.AppVersion .root.Values.image.tag) .role.image.tag -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/*
One role's pod template. Arguments (dict):
  root       the top context
  component  event-watcher | orchestrator | api | embedded
  role       the role's values (resources, nodeSelector, tolerations, affinity, image)
  args       the container's args (a list)
  sa         the ServiceAccount name
  token      whether the pod mounts a ServiceAccount token
  database   whether the pod gets the database and Redis URLs from the Secret
  dataLimit  size of the /var/lib/aetherius emptyDir
*/}}
{{- define "aetherius.podTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "aetherius.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- if and $root.Values.monitoring.enabled $root.Values.monitoring.podAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: "9090"
    prometheus.io/path: "/metrics"
    {{- end }}
spec:
  serviceAccountName: {{ .sa }}
  automountServiceAccountToken: {{ .token }}
  {{- /* NB: service links would inject AETHERIUS_<SERVICE>_* variables the settings read. */}}
  enableServiceLinks: false
  terminationGracePeriodSeconds: 30
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  containers:
    - name: {{ .component }}
      image: {{ include "aetherius.image" (dict "root" $root "role" .role) | quote }}
      imagePullPolicy: {{ default $root.Values.image.pullPolicy .role.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: LOG_LEVEL
          value: {{ $root.Values.logLevel | quote }}
        - name: CLUSTER_ID
          valueFrom:
            configMapKeyRef:
              name: {{ include "aetherius.configMapName" $root }}
              key: cluster_id
              optional: true
        {{- if eq $root.Values.mode "central" }}
        # The central NATS user's nkey seed (central.nk from `aetherius cluster add`).
        - name: AETHERIUS_NATS_NKEY_SEED
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.central.nats.seedSecret }}
              key: {{ $root.Values.central.nats.seedKey }}
        {{- end }}
        {{- if .database }}
        - name: AETHERIUS_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.externalDatabase.existingSecret }}
              key: {{ $root.Values.externalDatabase.urlKey }}
        {{- if $root.Values.externalRedis.enabled }}
        - name: AETHERIUS_REDIS_URL
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.externalRedis.existingSecret }}
              key: {{ $root.Values.externalRedis.urlKey }}
              optional: true
        {{- end }}
        {{- end }}
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
        - name: metrics
          containerPort: 9090
          protocol: TCP
      volumeMounts:
        - name: config
          mountPath: /etc/aetherius
          readOnly: true
        - name: tmp
          mountPath: /tmp
        - name: data
          mountPath: /var/lib/aetherius
      resources:
        {{- toYaml .role.resources | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /health/live
          port: http
        initialDelaySeconds: 30
        periodSeconds: 10
        timeoutSeconds: 5
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /health/ready
          port: http
        initialDelaySeconds: 5
        periodSeconds: 5
        timeoutSeconds: 3
        failureThreshold: 3
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
  volumes:
    - name: config
      configMap:
        name: {{ include "aetherius.configMapName" $root }}
        items:
          - key: app.yaml
            path: app.yaml
          - key: watcher.yaml
            path: watcher.yaml
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.tmpSizeLimit }}
    - name: data
      emptyDir:
        sizeLimit: {{ .dataLimit }}
  {{- with .role.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .role.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .role.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* A role's Service: (dict "root" $ "component" "api" "port" 8080 "type" "ClusterIP"). */}}
{{- define "aetherius.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ printf "%s-%s" (include "aetherius.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "aetherius.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  type: {{ default "ClusterIP" .type }}
  selector:
    {{- include "aetherius.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ default 8080 .port }}
      targetPort: http
      protocol: TCP
    - name: metrics
      port: 9090
      targetPort: metrics
      protocol: TCP
{{- end -}}
