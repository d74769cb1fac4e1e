{{/*
The two one-off jobs of the upgrade to sales (docs/operations.md, "Upgrading to the sales
service"), both post-install,post-upgrade hooks, idempotent, so a re-run on a later upgrade does
only what is missing. In one umbrella upgrade Helm runs the hooks of every chart by weight:
leads' job (weight 0) records the conversions of the deals its previous pods made during the
rolling update, then sales' copy (weight 30) finds every old deal with its conversion. 30 keeps
the copy's ServiceAccount and NetworkPolicy (10 and 20) after leads' Job too.
*/}}
{{- define "crm-lib.weight.recordLegacyConversions" -}}0{{- end -}}
{{- define "crm-lib.weight.copyDealsFromLeads" -}}30{{- end -}}

{{/*
crm-lib.recordLegacyConversions (leads, recordLegacyConversions.enabled): `record-legacy-conversions`
records a conversion for every deal of leads' old deals table that has none. It reaches DNS and
leads' own PostgreSQL only.
*/}}
{{- define "crm-lib.recordLegacyConversions" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- $cfg := $ctx.cfg -}}
{{- if ($cfg.recordLegacyConversions | default dict).enabled -}}
{{- if ne $ctx.service "leads" -}}
{{- fail (printf "%s: only leads records the conversions of its old deals" $ctx.service) -}}
{{- end -}}
{{- include "crm-lib.hookJob" (dict
  "ctx" $ctx
  "component" "record-legacy-conversions"
  "hook" "post-install,post-upgrade"
  "weight" (include "crm-lib.weight.recordLegacyConversions" $ctx)
  "container" "record-conversions"
  "args" (list "record-legacy-conversions")
  "backoffLimit" $cfg.recordLegacyConversions.backoffLimit
  "activeDeadlineSeconds" $cfg.recordLegacyConversions.activeDeadlineSeconds
  "egress" (include "crm-lib.egress.database" $ctx)) -}}
{{- end -}}
{{- end -}}

{{/*
crm-lib.copyDealsFromLeads (sales, copyDealsFromLeads.enabled): the one-off copy of the deals made
before sales existed, `copy-deals-from-leads`, reading the leads database's old deals tables
joined with their conversions. It runs once sales' own migration (pre-install/pre-upgrade)
created the tables it fills. It reaches DNS, sales' own PostgreSQL and the leads PostgreSQL,
whose URL comes only by reference to a Secret.
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
  "weight" (include "crm-lib.weight.copyDealsFromLeads" $ctx)
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
