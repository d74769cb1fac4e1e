{{/* crm-lib.ingress (gateway only, ingress.enabled): the public entry point, to the http port. */}}
{{- define "crm-lib.ingress" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- $ing := $ctx.cfg.ingress | default dict -}}
{{- if $ing.enabled -}}
{{- if ne $ctx.flow.kind "gateway" -}}
{{- fail (printf "%s: only the gateway is public; it alone may have an Ingress" $ctx.service) -}}
{{- end -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
  {{- with $ing.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $ing.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with $ing.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- range required "gateway: ingress.hosts is required when the Ingress is enabled" $ing.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range .paths | default (list (dict "path" "/" "pathType" "Prefix")) }}
          - path: {{ .path }}
            pathType: {{ .pathType | default "Prefix" }}
            backend:
              service:
                name: {{ $ctx.fullname }}
                port:
                  name: http
          {{- end }}
    {{- end }}
{{- end -}}
{{- end -}}
