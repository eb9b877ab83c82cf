{{/* Names and labels shared by every template of the chart. */}}
{{- define "culture-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "culture-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "culture-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "culture-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "culture-operator.labels" -}}
{{ include "culture-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: culture-platform
app.kubernetes.io/component: operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "culture-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "culture-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* The watched namespaces as a JSON list when every one is an exact name (RBAC is then granted by
  Roles in exactly those); an empty list when watching every namespace or when a glob is among them
  (RBAC is then cluster-wide). */}}
{{- define "culture-operator.scopedNamespaces" -}}
{{- $glob := false -}}
{{- range .Values.watchNamespaces -}}
{{- if or (contains "*" .) (contains "?" .) (contains "[" .) -}}
{{- $glob = true -}}
{{- end -}}
{{- end -}}
{{- if $glob -}}
[]
{{- else -}}
{{- .Values.watchNamespaces | default list | toJson -}}
{{- end -}}
{{- end -}}

{{- /* The rules the operator needs in each namespace it watches: exactly the verbs it uses on exactly
  the kinds it manages. Secrets: list (children by label), get (the keys it keeps and the external
  databases' Secrets it checks), create/patch (server-side apply), delete (pruning); never watch. */}}
{{- define "culture-operator.namespacedRules" }}
  # the CulturePlatform objects: watched by kopf, annotated (progress) and finalized by it
  - apiGroups: ["platform.culture.dev"]
    resources: ["cultureplatforms"]
    verbs: ["get", "list", "watch", "patch"]
  - apiGroups: ["platform.culture.dev"]
    resources: ["cultureplatforms/status"]
    verbs: ["get", "patch"]
  # ownerReferences with blockOwnerDeletion need update on the owner's finalizers
  - apiGroups: ["platform.culture.dev"]
    resources: ["cultureplatforms/finalizers"]
    verbs: ["update"]
  # the children: listed by label, server-side applied (patch, create), pruned (delete)
  - apiGroups: [""]
    resources: ["configmaps", "services"]
    verbs: ["get", "list", "create", "patch", "delete"]
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get", "list", "create", "patch", "delete"]
  - apiGroups: ["apps"]
    resources: ["deployments", "statefulsets"]
    verbs: ["get", "list", "create", "patch", "delete"]
  - apiGroups: ["policy"]
    resources: ["poddisruptionbudgets"]
    verbs: ["get", "list", "create", "patch", "delete"]
  - apiGroups: ["networking.k8s.io"]
    resources: ["networkpolicies"]
    verbs: ["get", "list", "create", "patch", "delete"]
  - apiGroups: ["kafka.strimzi.io"]
    resources: ["kafkas", "kafkanodepools", "kafkatopics"]
    verbs: ["get", "list", "create", "patch", "delete"]
  # Events on the CulturePlatform objects (aggregated: a repeat patches the count)
  - apiGroups: ["", "events.k8s.io"]
    resources: ["events"]
    verbs: ["get", "create", "patch"]
  # kopf peering between replicas watching some namespaces: a KopfPeering in each
  - apiGroups: ["kopf.dev"]
    resources: ["kopfpeerings"]
    verbs: ["get", "list", "watch", "patch"]
{{- end }}
