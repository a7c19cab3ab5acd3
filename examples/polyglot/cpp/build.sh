#!/usr/bin/env bash
# build.sh [DIR]: builds the C++ worker into DIR/worker, by default ./build
# next to this script. The gRPC stubs are generated from the repository's
# proto/ into DIR/gen on each build and never kept in the repository.
# Needs g++, pkg-config, protoc, gRPC's C++ plugin and the gRPC and
# protobuf C++ libraries; on Debian 12:
#   apt-get install g++ pkg-config protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
set -euo pipefail

packages="g++ pkg-config protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev"
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build}"
for tool in g++ pkg-config protoc grpc_cpp_plugin; do
	if ! command -v "$tool" >/dev/null; then
		echo "build.sh: $tool not found; on Debian: apt-get install $packages" >&2
		exit 1
	fi
done
if ! pkg-config --exists grpc++ protobuf; then
	echo "build.sh: pkg-config knows no grpc++ or protobuf; on Debian: apt-get install $packages" >&2
	exit 1
fi
mkdir -p "$out/gen"
out="$(cd "$out" && pwd)"

# The stubs: messages (*.pb.*) and the DispatchService client (*.grpc.pb.*).
protoc -I "$here/../../../proto" --cpp_out="$out/gen" --grpc_out="$out/gen" \
	--plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
	palm/v1/message.proto palm/v1/dispatch.proto

# Compile the four sources in parallel, then link.
read -r -a cflags <<<"$(pkg-config --cflags grpc++ protobuf)"
read -r -a libs <<<"$(pkg-config --libs grpc++ protobuf)"
pids=()
for src in "$here/worker.cc" "$out"/gen/palm/v1/message.pb.cc "$out"/gen/palm/v1/dispatch.pb.cc "$out"/gen/palm/v1/dispatch.grpc.pb.cc; do
	g++ -std=c++17 -O2 -Wall "${cflags[@]}" -I "$out/gen" -c "$src" -o "$out/$(basename "$src" .cc).o" &
	pids+=($!)
done
for pid in "${pids[@]}"; do
	wait "$pid"
done
g++ -o "$out/worker" "$out"/*.o "${libs[@]}"
