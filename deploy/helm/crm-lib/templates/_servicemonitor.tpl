{{/*
crm-lib.serviceMonitor (monitoring.serviceMonitor.enabled; needs the Prometheus Operator's CRDs):
scrapes the service's `metrics` port; the scrape job is the Service's name (crm-<service>), the
name the alerts and dashboards use. Prometheus reaches the port through the NetworkPolicy's
metrics rule (networkPolicy.monitoring.peers). The umbrella chart renders the same object for
every service from its own monitoring.serviceMonitor (crm-lib.serviceMonitorFor).
*/}}
{{- define "crm-lib.serviceMonitor" -}}
{{- $sm := (.Values.monitoring | default dict).serviceMonitor | default dict -}}
{{- if $sm.enabled -}}
{{- include "crm-lib.serviceMonitorFor" (dict "root" . "settings" $sm) -}}
{{- end -}}
{{- end -}}

{{/* crm-lib.serviceMonitorFor (dict "root" <a service chart's context> "settings" {interval, scrapeTimeout, labels}) */}}
{{- define "crm-lib.serviceMonitorFor" -}}
{{- $ctx := dict "root" .root -}}
{{- include "crm-lib.init" $ctx -}}
{{- $sm := .settings -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "crm-lib.selectorLabels" (dict "ctx" $ctx) | nindent 6 }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ $sm.interval | default "30s" }}
      scrapeTimeout: {{ $sm.scrapeTimeout | default "10s" }}
{{- end -}}
