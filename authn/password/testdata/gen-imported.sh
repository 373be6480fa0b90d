#!/usr/bin/env bash
# Regenerates imported.jsonl: password hashes made by real tools, never by
# stepup (imported_test.go reads them). Needs apache2-utils (htpasswd),
# argon2, perl and python3 (hashlib; its crypt module, i.e. libxcrypt).
# Each line: {"format", "password", "hash", "tool"}.
set -euo pipefail
cd "$(dirname "$0")"
pw1='correct horse battery staple'
pw2='pässwörd ünïcode 🔑'
{
for pw in "$pw1" "$pw2"; do
  # bcrypt $2y$ from Debian's htpasswd.
  h=$(htpasswd -bnBC 10 user "$pw" | cut -d: -f2 | tr -d '\n')
  PW="$pw" H="$h" T="htpasswd -bnBC 10 user PW" F=bcrypt python3 -c 'import json,os; print(json.dumps({"format":os.environ["F"],"password":os.environ["PW"],"hash":os.environ["H"],"tool":os.environ["T"]}, ensure_ascii=False))'
  # argon2id and argon2i from the reference argon2 CLI.
  salt=$(python3 -c 'import secrets; print(secrets.token_hex(8))')
  h=$(printf %s "$pw" | argon2 "$salt" -id -t 3 -m 12 -p 1 -e)
  PW="$pw" H="$h" T="printf %s PW | argon2 SALT -id -t 3 -m 12 -p 1 -e" F=argon2id python3 -c 'import json,os; print(json.dumps({"format":os.environ["F"],"password":os.environ["PW"],"hash":os.environ["H"],"tool":os.environ["T"]}, ensure_ascii=False))'
  h=$(printf %s "$pw" | argon2 "$salt" -i -t 2 -m 10 -p 2 -e)
  PW="$pw" H="$h" T="printf %s PW | argon2 SALT -i -t 2 -m 10 -p 2 -e" F=argon2i python3 -c 'import json,os; print(json.dumps({"format":os.environ["F"],"password":os.environ["PW"],"hash":os.environ["H"],"tool":os.environ["T"]}, ensure_ascii=False))'
  # The rest from Python: libxcrypt for $2a$/$2b$, hashlib for the
  # passlib and Django formats, written exactly as passlib and Django
  # write them (passlib's "ab64" is base64 with '.' for '+', unpadded).
  PW="$pw" python3 - <<'PY'
import base64, crypt, hashlib, json, os, secrets, string
pw = os.environ["PW"]
def out(fmt, h, tool):
    print(json.dumps({"format": fmt, "password": pw, "hash": h, "tool": tool}, ensure_ascii=False))
def ab64(b):
    return base64.b64encode(b).decode().rstrip("=").replace("+", ".")
bcalpha = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
for prefix in ("$2a$", "$2b$"):
    salt = "".join(secrets.choice(bcalpha) for _ in range(21)) + secrets.choice(".Oeu")
    out("bcrypt", crypt.crypt(pw, prefix + "10$" + salt), "python3 crypt.crypt(PW, '%s10$'+SALT) (libxcrypt)" % prefix)
salt = os.urandom(16)
out("pbkdf2-sha256", "$pbkdf2-sha256$29000$%s$%s" % (ab64(salt), ab64(hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, 29000, 32))),
    "hashlib.pbkdf2_hmac('sha256', PW, SALT, 29000, 32), passlib layout")
out("pbkdf2-sha512", "$pbkdf2-sha512$25000$%s$%s" % (ab64(salt), ab64(hashlib.pbkdf2_hmac("sha512", pw.encode(), salt, 25000, 64))),
    "hashlib.pbkdf2_hmac('sha512', PW, SALT, 25000, 64), passlib layout")
for ln, r, p in ((14, 8, 1), (12, 8, 2)):
    out("scrypt", "$scrypt$ln=%d,r=%d,p=%d$%s$%s" % (ln, r, p, ab64(salt), ab64(hashlib.scrypt(pw.encode(), salt=salt, n=1 << ln, r=r, p=p, maxmem=1 << 28, dklen=32))),
        "hashlib.scrypt(PW, salt=SALT, n=2**%d, r=%d, p=%d, dklen=32), passlib layout" % (ln, r, p))
dsalt = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(22))
out("django-pbkdf2-sha256", "pbkdf2_sha256$260000$%s$%s" % (dsalt, base64.b64encode(hashlib.pbkdf2_hmac("sha256", pw.encode(), dsalt.encode(), 260000, 32)).decode()),
    "hashlib.pbkdf2_hmac('sha256', PW, SALT, 260000, 32), Django layout")
PY
done
} > imported.jsonl
