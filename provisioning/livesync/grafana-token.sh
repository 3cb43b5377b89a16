#!/bin/sh
# One-shot start-up step of docker-compose.yml: gives the LiveSync service a Grafana
# service-account token for the Grafana Live push API, with no manual step.
#
# Creates (or finds) the service account SERVICE_ACCOUNT with the Admin role (pushing to
# /api/live/push needs it), creates a token for it and writes the token to TOKEN_FILE, readable
# only by TOKEN_OWNER (the service's user). A token already in TOKEN_FILE that Grafana still
# accepts is kept, so restarting the stack creates no new token.
set -eu

grafana="${GRAFANA_URL:-http://grafana:3000}"
auth="${GRAFANA_ADMIN_USER:-admin}:${GRAFANA_ADMIN_PASSWORD:-admin}"
account="${SERVICE_ACCOUNT:-livesync}"
file="${TOKEN_FILE:-/run/livesync/grafana-token}"
owner="${TOKEN_OWNER:-1000:1000}"

# The admin API, with basic auth; fails on an HTTP error and prints Grafana's message.
api() {
  method="$1"
  path="$2"
  shift 2
  curl --silent --show-error --fail-with-body --retry 5 --retry-connrefused --retry-delay 2 \
    --user "$auth" --header 'Content-Type: application/json' --request "$method" "$grafana$path" "$@"
}

# The first number after "<key>": in a JSON text (no jq in the image; the answers are flat).
number() {
  printf '%s' "$1" | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2
}

if [ -s "$file" ] &&
  curl --silent --fail --output /dev/null --header "Authorization: Bearer $(cat "$file")" "$grafana/api/org"; then
  echo "grafana-token: $file holds a token Grafana accepts; keeping it"
  exit 0
fi

# The search matches substrings: keep the account whose name is exactly $account. Each account
# is one JSON object; its id comes before any nested object, so splitting on '{' keeps them together.
found="$(api GET "/api/serviceaccounts/search?perpage=1000&query=$account")"
id="$(number "$(printf '%s' "$found" | tr '{' '\n' | grep "\"name\":\"$account\"" || true)" id)"
if [ -z "$id" ]; then
  created="$(api POST /api/serviceaccounts --data "{\"name\":\"$account\",\"role\":\"Admin\",\"isDisabled\":false}")"
  id="$(number "$created" id)"
  echo "grafana-token: created service account $account (id $id)"
fi
[ -n "$id" ] || { echo "grafana-token: no service account id in Grafana's answer" >&2; exit 1; }

# Token names are unique per account: stamp each with the time it was made.
made="$(api POST "/api/serviceaccounts/$id/tokens" --data "{\"name\":\"$account-$(date +%Y%m%dT%H%M%S)\"}")"
key="$(printf '%s' "$made" | grep -o '"key":"[^"]*"' | cut -d '"' -f 4)"
[ -n "$key" ] || { echo "grafana-token: no token in Grafana's answer" >&2; exit 1; }

# Write beside the file and rename: the service never reads half a token.
umask 077
mkdir -p "$(dirname "$file")"
printf '%s' "$key" >"$file.tmp"
chown "$owner" "$file.tmp"
chmod 0400 "$file.tmp"
mv "$file.tmp" "$file"
echo "grafana-token: wrote a token for service account $account to $file"
