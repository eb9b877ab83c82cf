"""The kopf operator that reconciles a CulturePlatform custom resource."""
