#!/usr/bin/env bash
# generate.sh [DIR]: generates the Python modules for palm's protos
# (palm/v1/*_pb2.py for the messages, palm/v1/*_pb2_grpc.py for the stubs)
# into DIR, by default ./gen next to this script, where worker.py looks.
# Needs protoc and gRPC's Python plugin; on Debian:
#   apt-get install protobuf-compiler protobuf-compiler-grpc
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/gen}"
for tool in protoc grpc_python_plugin; do
	if ! command -v "$tool" >/dev/null; then
		echo "generate.sh: $tool not found; on Debian: apt-get install protobuf-compiler protobuf-compiler-grpc" >&2
		exit 1
	fi
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"

cd "$here/../../../proto"
protoc --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
	--python_out="$out" --grpc_python_out="$out" -I . palm/v1/*.proto
