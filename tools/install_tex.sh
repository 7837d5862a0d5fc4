#!/usr/bin/env bash
# Install the TeX engine the table tests compile with (pdflatex + booktabs), only when missing.
# Debian/Ubuntu packages: texlive-latex-base (pdflatex), texlive-latex-recommended (booktabs).
# Idempotent: does nothing when pdflatex finds booktabs.sty; without apt-get or root it says what to install.
set -euo pipefail
if command -v pdflatex >/dev/null 2>&1 && kpsewhich booktabs.sty >/dev/null 2>&1; then
    exit 0
fi
PACKAGES="texlive-latex-base texlive-latex-recommended"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi
fi
if ! command -v apt-get >/dev/null 2>&1 || { [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; }; then
    echo "install_tex: pdflatex with booktabs not found; install $PACKAGES (or any TeX distribution with booktabs)." \
         "The LaTeX compile tests are skipped until then." >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
