"""Safety and compliance: detectors (PII, secrets, injection), masking used by every writer,
guards for the SDK and the fixture, and the audit trail. Pure: no pytest, no model call."""
