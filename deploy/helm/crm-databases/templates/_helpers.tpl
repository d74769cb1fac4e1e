{{- define "crm-databases.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/name: {{ .service }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: database
app.kubernetes.io/part-of: {{ .root.Values.system }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}
