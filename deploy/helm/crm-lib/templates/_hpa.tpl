{{/*
crm-lib.horizontalPodAutoscaler (autoscaling.enabled): CPU-based, autoscaling/v2. With
autoscaling.consumerLag.enabled, a backend that consumes events gets a KEDA ScaledObject instead
(KEDA makes the HPA from it; two HPAs on one Deployment would fight): the same CPU target plus one
nats-jetstream trigger per durable consumer of the service (the flow table's `consumers`), so a
backlog adds pods before the CPU shows it.
*/}}
{{- define "crm-lib.horizontalPodAutoscaler" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- $hpa := $ctx.cfg.autoscaling -}}
{{- if $hpa.enabled -}}
{{- if gt (int $hpa.minReplicas) (int $hpa.maxReplicas) -}}
{{- fail (printf "%s: autoscaling.minReplicas is above maxReplicas" $ctx.service) -}}
{{- end -}}
{{- $lag := $hpa.consumerLag | default dict -}}
{{- $consumers := $ctx.flow.consumers | default list -}}
{{- if and $lag.enabled $consumers -}}
{{- $endpoint := required (printf "%s: autoscaling.consumerLag.natsMonitoringEndpoint (host:8222, which KEDA polls) is required" $ctx.service) $lag.natsMonitoringEndpoint -}}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $ctx.fullname }}
  minReplicaCount: {{ $hpa.minReplicas }}
  maxReplicaCount: {{ $hpa.maxReplicas }}
  pollingInterval: {{ $lag.pollingInterval }}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 300
  triggers:
    - type: cpu
      metricType: Utilization
      metadata:
        value: {{ $hpa.targetCPUUtilizationPercentage | quote }}
    {{- range $consumers }}
    - type: nats-jetstream
      metadata:
        natsServerMonitoringEndpoint: {{ $endpoint | quote }}
        account: {{ $lag.account | quote }}
        stream: CRM
        consumer: {{ . | quote }}
        lagThreshold: {{ $lag.lagThreshold | quote }}
        activationLagThreshold: {{ $lag.activationLagThreshold | quote }}
        useHttps: {{ $lag.useHttps | quote }}
    {{- end }}
{{- else -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $ctx.fullname }}
  minReplicas: {{ $hpa.minReplicas }}
  maxReplicas: {{ $hpa.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $hpa.targetCPUUtilizationPercentage }}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
{{- end -}}
{{- end -}}
{{- end -}}
