"""The web app (an entry point): route modules grouped by audience, each an ``APIRouter``."""
