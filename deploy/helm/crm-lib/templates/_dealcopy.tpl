{{/*
crm-lib.copyDealsFromLeads (sales, copyDealsFromLeads.enabled): the one-off copy of the deals made
before sales existed, `copy-deals-from-leads`, reading the leads database's old deals tables
(docs/operations.md, "Upgrading to the sales service"). A post-install,post-upgrade hook: it runs
once sales' own migration (pre-install/pre-upgrade) created the tables it fills, and the copy is
idempotent, so a re-run on a later upgrade copies only what is missing. It reaches DNS, sales'
own PostgreSQL and the leads PostgreSQL, whose URL comes only by reference to a Secret.
*/}}
{{- define "crm-lib.copyDealsFromLeads" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- $cfg := $ctx.cfg -}}
{{- if ($cfg.copyDealsFromLeads | default dict).enabled -}}
{{- if ne $ctx.service "sales" -}}
{{- fail (printf "%s: only sales copies deals from leads" $ctx.service) -}}
{{- end -}}
{{- $leads := include "crm-lib.peerName" (dict "ctx" $ctx "peer" "leads") -}}
{{- $egress := list
  (include "crm-lib.egress.database" $ctx)
  "# the leads PostgreSQL (its old deals tables, read only)"
  (include "crm-lib.egress.postgres" (dict "ctx" $ctx "database" $cfg.legacyLeadsDatabase "cluster" (printf "%s-db" $leads) "what" "legacyLeadsDatabase")) -}}
{{- include "crm-lib.hookJob" (dict
  "ctx" $ctx
  "component" "copy-deals-from-leads"
  "hook" "post-install,post-upgrade"
  "container" "copy-deals"
  "args" (list "copy-deals-from-leads")
  "backoffLimit" $cfg.copyDealsFromLeads.backoffLimit
  "activeDeadlineSeconds" $cfg.copyDealsFromLeads.activeDeadlineSeconds
  "env" (include "crm-lib.legacyLeadsDatabaseEnv" (dict "ctx" $ctx "leads" $leads))
  "egress" (join "\n" $egress)) -}}
{{- end -}}
{{- end -}}

{{/* The leads database URL, by reference (default: the leads chart's own Secret, <system>-leads-database). */}}
{{- define "crm-lib.legacyLeadsDatabaseEnv" -}}
{{- $legacy := .ctx.cfg.legacyLeadsDatabase -}}
- name: CRM_LEGACY_LEADS_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $legacy.existingSecret | default (printf "%s-database" .leads) }}
      key: {{ required "sales: legacyLeadsDatabase.secretKey is required" $legacy.secretKey }}
{{- end -}}
