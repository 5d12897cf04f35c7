"""Print the usage message JSON Schema.

``python -m tollgate.commands.usage_schema > docs/usage-message.schema.json``
"""

from __future__ import annotations

import json
import sys

from tollgate.domain.usage import usage_message_json_schema

if __name__ == "__main__":
    sys.stdout.write(json.dumps(usage_message_json_schema(), indent=2, sort_keys=True) + "\n")
