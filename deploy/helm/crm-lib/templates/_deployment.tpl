{{/* crm-lib.deployment: the service's server (`serve`). */}}
{{- define "crm-lib.deployment" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- $cfg := $ctx.cfg -}}
{{- /* the console speaks neither gRPC nor NATS: their TLS files are not its own */}}
{{- $grpcTls := and $ctx.chassis $cfg.grpcTls.enabled -}}
{{- $natsTls := and $ctx.chassis $cfg.nats.tls.enabled -}}
{{- $reportEngine := eq (include "crm-lib.reportEngineVolume" $ctx) "true" -}}
{{- include "crm-lib.connectionBudget" $ctx -}}
{{- $selector := include "crm-lib.selectorLabels" (dict "ctx" $ctx) -}}
{{- /* the preStop pause lets endpoints drop the pod before SIGTERM; then the service's own grace, and a margin */}}
{{- $grace := add (int $cfg.preStopSleepSeconds) (int (ceil $cfg.shutdownGraceSeconds)) 10 -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
spec:
  {{- if not $cfg.autoscaling.enabled }}
  replicas: {{ $cfg.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "crm-lib.labels" (dict "ctx" $ctx) | nindent 8 }}
        {{- with $cfg.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $cfg.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ $ctx.fullname }}
      {{- include "crm-lib.podCommon" $ctx | nindent 6 }}
      terminationGracePeriodSeconds: {{ $grace }}
      {{- if $cfg.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
        - topologyKey: {{ . }}
          maxSkew: {{ $cfg.topologySpread.maxSkew }}
          whenUnsatisfiable: {{ $cfg.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- $selector | nindent 14 }}
          matchLabelKeys: [pod-template-hash]
        {{- end }}
      {{- end }}
      containers:
        - name: {{ $ctx.service }}
          image: {{ include "crm-lib.image" $ctx | quote }}
          imagePullPolicy: {{ $cfg.image.pullPolicy }}
          args: [serve]
          ports:
            {{- if $ctx.http }}
            - name: http
              containerPort: {{ include "crm-lib.port.http" $ctx }}
              protocol: TCP
            {{- else }}
            - name: grpc
              containerPort: {{ include "crm-lib.port.grpc" $ctx }}
              protocol: TCP
            {{- end }}
            - name: metrics
              containerPort: {{ include "crm-lib.port.metrics" $ctx }}
              protocol: TCP
          env:
            {{- include "crm-lib.env" (dict "ctx" $ctx "migration" false) | nindent 12 }}
          {{- include "crm-lib.probes" $ctx | trim | nindent 10 }}
          {{- if gt (int $cfg.preStopSleepSeconds) 0 }}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ $cfg.preStopSleepSeconds }}
          {{- end }}
          resources:
            {{- include "crm-lib.resources" $ctx | nindent 12 }}
          securityContext:
            {{- include "crm-lib.containerSecurityContext" $ctx | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $reportEngine }}
            - name: report-engine
              mountPath: {{ include "crm-lib.reportEngineDir" $ctx }}
            {{- end }}
            {{- if $grpcTls }}
            - name: grpc-tls
              mountPath: {{ include "crm-lib.tlsDir" $ctx }}
              readOnly: true
            {{- end }}
            {{- if $natsTls }}
            - name: nats-tls
              mountPath: {{ include "crm-lib.natsTlsDir" $ctx }}
              readOnly: true
            {{- end }}
      volumes:
        {{- include "crm-lib.tmpVolume" $ctx | nindent 8 }}
        {{- if $reportEngine }}
        - name: report-engine
          emptyDir:
            sizeLimit: {{ $cfg.reportEngine.volumeSizeLimit }}
        {{- end }}
        {{- if $grpcTls }}
        - name: grpc-tls
          secret:
            secretName: {{ include "crm-lib.tlsSecretName" $ctx }}
            defaultMode: 288  # 0440: owner root, group fsGroup
        {{- end }}
        {{- if $natsTls }}
        - name: nats-tls
          secret:
            secretName: {{ include "crm-lib.natsTlsSecretName" $ctx }}
            defaultMode: 288  # 0440: owner root, group fsGroup
        {{- end }}
{{- end -}}


{{/* crm-lib.connectionBudget: a backend's pods at their most — the replicas (or the autoscaler's
maximum) and the rolling update's surge pod — each with up to 2 × dbPoolSize connections, and
the migration's one, must fit in database.maxConnections; else the release is refused (a pod
past the database's limit fails its requests instead). */}}
{{- define "crm-lib.connectionBudget" -}}
{{- $cfg := .cfg -}}
{{- if eq .flow.kind "backend" -}}
{{- $pods := add1 (ternary (int $cfg.autoscaling.maxReplicas) (int $cfg.replicaCount) $cfg.autoscaling.enabled) -}}
{{- $need := add1 (mul $pods 2 (int $cfg.dbPoolSize)) -}}
{{- $cnpg := $cfg.database.cloudnativepg | default dict -}}
{{- $limit := int ($cfg.database.maxConnections | default 97) -}}
{{- if and $cnpg.enabled $cnpg.pooler -}}
{{- $limit = int $cnpg.poolerMaxClientConnections -}}
{{- end -}}
{{- if gt (int $need) $limit -}}
{{- fail (printf "%s: up to %d connections to its database (%d pods in a rollout × 2 × dbPoolSize %d, and the migration), more than database.maxConnections %d: lower dbPoolSize or the replicas, raise the database's max_connections, or put a pooler in front and give its limit" .service (int $need) (int $pods) (int $cfg.dbPoolSize) $limit) -}}
{{- end -}}
{{- end -}}
{{- end -}}
