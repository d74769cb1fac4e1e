{{/*
crm-lib.flows: the system's flows, one row per service (docs/architecture.md). The
NetworkPolicies of every chart are derived from this one table:
  kind      gateway (public HTTP API on 8080, no database), backend (gRPC on 50051, own
            PostgreSQL, NATS, the migration hook) or frontend (public web pages on 8081 over the
            gateway's API: no database, NATS or gRPC)
  calls     services it calls over gRPC (:50051): its egress, and their ingress (a service
            accepts gRPC only from the services whose row names it)
  httpCalls services it calls over HTTP on their http port, the same way (egress and ingress)
  external  dependencies outside the cluster, each with `<name>.networkPeers` and `<name>.port`
            in the service's values (egress only); a block with a `url` or `host` key has
            egress only while it is set (support's objectStore, notifications' smtp: no store or
            relay, no egress)
  envPrefix the prefix of the service's settings variables (CRM_ unless its settings say otherwise)
  consumers a backend's durable JetStream consumers (crm_kit.nats_access.consumer_groups; a deploy
            test keeps them equal): what autoscaling.consumerLag watches
Besides these: every pod → DNS; every backend → its PostgreSQL, NATS and the OTLP collector (when
an endpoint is set; the gateway too, it exports traces, and NATS for its Idempotency-Key bucket);
the gateway and the console ← the ingress controller; the metrics port ← the monitoring
namespace; sales' one-off deal copy job → the leads PostgreSQL.
*/}}
{{- define "crm-lib.flows" -}}
gateway:
  kind: gateway
  calls: [leads, sales, customers, orders, support, notifications, reporting]
  external: [auth]
# The console reads the OIDC issuer's discovery document and exchanges sign-in codes for tokens
# itself (server to server), so the issuer is its external dependency, as the JWKS is the gateway's.
console:
  kind: frontend
  calls: []
  httpCalls: [gateway]
  external: [oidc]
  envPrefix: CRM_CONSOLE_
leads:
  kind: backend
  calls: []
  external: []
  consumers: []
sales:
  kind: backend
  calls: []
  external: []
  consumers: [sales-from-leads]
customers:
  kind: backend
  calls: []
  external: []
  consumers: [customers-from-leads, customers-from-notifications, customers-from-orders, customers-from-reporting, customers-from-sales, customers-from-support]
orders:
  kind: backend
  calls: []
  external: []
  consumers: [orders-from-sales]
support:
  kind: backend
  calls: []
  external: [objectStore]
  consumers: []
notifications:
  kind: backend
  calls: [customers, reporting]
  external: [sms, smtp]
  consumers: [notifications-from-customers, notifications-from-orders, notifications-from-reporting, notifications-from-support]
reporting:
  kind: backend
  calls: []
  external: []
  consumers: [reporting-from-customers, reporting-from-leads, reporting-from-notifications, reporting-from-orders, reporting-from-sales, reporting-from-support]
{{- end -}}

{{/* crm-lib.callers (ctx): the services whose row calls this one over gRPC, as a YAML list. */}}
{{- define "crm-lib.callers" -}}
{{- $callers := list -}}
{{- range $name, $row := .flows -}}
{{- if has $.service $row.calls -}}
{{- $callers = append $callers $name -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "callers" $callers) -}}
{{- end -}}

{{/* crm-lib.httpCallers (ctx): the services whose row calls this one over HTTP, as a YAML list. */}}
{{- define "crm-lib.httpCallers" -}}
{{- $callers := list -}}
{{- range $name, $row := .flows -}}
{{- if has $.service ($row.httpCalls | default list) -}}
{{- $callers = append $callers $name -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "callers" $callers) -}}
{{- end -}}
