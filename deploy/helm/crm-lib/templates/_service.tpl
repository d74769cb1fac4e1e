{{/* crm-lib.service: the Service named <system>-<service> (the address other charts use), its http
     port (the gateway, the console) or gRPC port (backends), and metrics. Backends'
     is headless: DNS answers with every ready pod, and the gRPC clients balance round-robin over
     them (a ClusterIP would pin each long-lived connection to one pod). */}}
{{- define "crm-lib.service" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
spec:
  type: ClusterIP
  {{- if not $ctx.http }}
  clusterIP: None
  {{- end }}
  selector:
    {{- include "crm-lib.selectorLabels" (dict "ctx" $ctx) | nindent 4 }}
  ports:
    {{- if $ctx.http }}
    - name: http
      port: {{ include "crm-lib.port.http" $ctx }}
      targetPort: http
      protocol: TCP
    {{- else }}
    - name: grpc
      port: {{ include "crm-lib.port.grpc" $ctx }}
      targetPort: grpc
      protocol: TCP
    {{- end }}
    - name: metrics
      port: {{ include "crm-lib.port.metrics" $ctx }}
      targetPort: metrics
      protocol: TCP
{{- end -}}
