{{/*
crm-lib.flows: the system's flows, one row per service (docs/architecture.md). The
NetworkPolicies of every chart are derived from this one table:
  kind      gateway (public HTTP on 8080, no database) or backend (gRPC on 50051, own PostgreSQL,
            NATS, the migration hook)
  calls     services it calls over gRPC (:50051): its egress, and their ingress (a service
            accepts gRPC only from the services whose row names it)
  external  dependencies outside the cluster, each with `<name>.networkPeers` and `<name>.port`
            in the service's values (egress only)
Besides these: every pod → DNS; every backend → its PostgreSQL, NATS and the OTLP collector (when
an endpoint is set; the gateway too, it exports traces); the gateway ← the ingress controller; the
metrics port ← the monitoring namespace; sales' one-off deal copy job → the leads PostgreSQL.
*/}}
{{- define "crm-lib.flows" -}}
gateway:
  kind: gateway
  calls: [leads, sales, customers, orders, notifications, reporting]
  external: [auth]
leads:
  kind: backend
  calls: []
  external: []
sales:
  kind: backend
  calls: []
  external: []
customers:
  kind: backend
  calls: []
  external: []
orders:
  kind: backend
  calls: []
  external: []
notifications:
  kind: backend
  calls: [customers]
  external: [sms]
reporting:
  kind: backend
  calls: []
  external: []
{{- end -}}

{{/* crm-lib.callers (ctx): the services whose row calls this one, as a YAML list. */}}
{{- define "crm-lib.callers" -}}
{{- $callers := list -}}
{{- range $name, $row := .flows -}}
{{- if has $.service $row.calls -}}
{{- $callers = append $callers $name -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "callers" $callers) -}}
{{- end -}}
