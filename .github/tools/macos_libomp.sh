#!/usr/bin/env bash
# Install libomp for macOS wheel builds under /tmp/libomp (CPPFLAGS/LDFLAGS in
# pyproject's [tool.cibuildwheel.macos] point there); delocate vendors it.
set -euo pipefail
brew install libomp
prefix=$(brew --prefix libomp)
rm -rf /tmp/libomp
mkdir -p /tmp/libomp
cp -R "$prefix/include" "$prefix/lib" /tmp/libomp/
