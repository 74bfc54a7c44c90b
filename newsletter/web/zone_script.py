"""The sign-up form's one script: it puts the browser's time zone in a hidden field (progressive enhancement).

Without JavaScript the field stays empty and the reader is in the publication's zone. The page's CSP allows
this script alone, by the SHA-256 of its exact text, so no other inline script can run.
"""

from __future__ import annotations

import base64
import hashlib

ZONE_SCRIPT = ('try{document.getElementById("time_zone").value='
               'Intl.DateTimeFormat().resolvedOptions().timeZone||""}catch(e){}')
ZONE_SCRIPT_SOURCE = "'sha256-" + base64.b64encode(hashlib.sha256(ZONE_SCRIPT.encode()).digest()).decode() + "'"
