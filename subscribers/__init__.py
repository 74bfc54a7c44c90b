"""Who gets mail and why: sign-up, consent, preferences, unsubscribe, suppression."""
