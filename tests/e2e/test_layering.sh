#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The layering rule, checked by machine: the checker catches a planted violation, then every
# core of the Makefile's CORE_SRCS passes it (see scripts/check-layering.sh).
set -u
cd "$(dirname "$0")/../.."
scripts/check-layering.sh --self-test || exit 1
scripts/check-layering.sh
