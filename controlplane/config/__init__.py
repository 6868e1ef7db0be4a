"""The scenario schema: shared field types and one validation entry point (schema.py), the sections
gathered into ScenarioModel (models.py), bounds (limits.py), units (units.py) and typed values from
text (values.py). Each section's model lives beside its mechanism in the other subpackages."""
