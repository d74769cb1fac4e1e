{{/*
crm-lib.podDisruptionBudget (podDisruptionBudget.enabled). Refuses a budget that would block
every voluntary eviction (minAvailable not below the replica count, or the HPA's minimum).
*/}}
{{- define "crm-lib.podDisruptionBudget" -}}
{{- $ctx := dict "root" . -}}
{{- include "crm-lib.init" $ctx -}}
{{- $cfg := $ctx.cfg -}}
{{- $pdb := $cfg.podDisruptionBudget -}}
{{- if $pdb.enabled -}}
{{- $replicas := ternary $cfg.autoscaling.minReplicas $cfg.replicaCount (eq $cfg.autoscaling.enabled true) | int -}}
{{- if and (not (kindIs "string" $pdb.minAvailable)) (ge (int $pdb.minAvailable) $replicas) -}}
{{- fail (printf "%s: podDisruptionBudget.minAvailable (%d) must be below the replicas (%d), or no node could ever be drained" $ctx.service (int $pdb.minAvailable) $replicas) -}}
{{- end -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "crm-lib.metadata" (dict "ctx" $ctx) | nindent 2 }}
spec:
  minAvailable: {{ $pdb.minAvailable }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "crm-lib.selectorLabels" (dict "ctx" $ctx) | nindent 6 }}
{{- end -}}
{{- end -}}
