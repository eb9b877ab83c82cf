{{/* The CulturePlatform's name: platform.name, or the release name. */}}
{{- define "culture-platform.name" -}}
{{- default .Release.Name .Values.platform.name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
