#!/usr/bin/env bash
# Debian packages the CRM needs at run and test time, installed only when missing (idempotent):
#   fonts-noto-core  Noto Sans Hebrew, Noto Naskh Arabic and Noto Sans: the quote PDF's fonts
#   poppler-utils    pdftotext / pdftoppm / pdffonts: the quote PDF tests read the PDF back
#   libpango-1.0-0, libpangoft2-1.0-0, libharfbuzz-subset0
#                    WeasyPrint's text layout (Pango + HarfBuzz shaping) and font subsetting
#   chromium         the browser the console's tests drive headless (Playwright, never its own download)
# The sales image installs the same runtime libraries itself (services/sales/Dockerfile). As root
# this installs with apt-get; as another user it names what to install and fails, so nothing
# later fails with an obscure error.
set -euo pipefail

missing=()
fc-list 2>/dev/null | grep -q "NotoSansHebrew" || missing+=(fonts-noto-core)
command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
libs="$(ldconfig -p 2>/dev/null || true)"  # no ldconfig: every library counts as missing
grep -q "libpango-1.0.so.0" <<<"$libs" || missing+=(libpango-1.0-0)
grep -q "libpangoft2-1.0.so.0" <<<"$libs" || missing+=(libpangoft2-1.0-0)
grep -q "libharfbuzz-subset.so.0" <<<"$libs" || missing+=(libharfbuzz-subset0)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "system-packages: missing ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
