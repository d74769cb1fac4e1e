{{/* crm-lib.service: ClusterIP Service named <system>-<service> (the address other charts use). */}}
{{- define "crm-lib.service" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
spec:
  type: ClusterIP
  selector:
    {{- include "crm-lib.selectorLabels" (dict "ctx" $ctx) | nindent 4 }}
  ports:
    {{- if eq $ctx.flow.kind "gateway" }}
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
