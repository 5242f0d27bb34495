# dettrain for NVIDIA GPU hosts. Details, and what was checked how: docs/DOCKER.md.
#
#   docker build -t dettrain .
#   docker run --rm --gpus all -v "$PWD/data:/data" -v "$PWD/runs:/runs" dettrain synth --out demo/shapes
#   docker run --rm --gpus all -v "$PWD/data:/data" -v "$PWD/runs:/runs" dettrain train --config configs/demo.yaml
#
# Two stages. The build stage compiles dettrain with cgo (gocv needs it) against
# Debian 12's OpenCV 4.6, with the Go toolchain of go.mod fetched from the Go
# module proxy. The runtime stage is NVIDIA's CUDA 13 + cuDNN 9 image on Ubuntu
# 24.04 plus only the shared libraries the binary needs. No CUDA is needed to
# build: dettrain opens libcuda, cuBLAS, cuDNN and NVRTC at run time with
# purego (no cgo, no CUDA headers). scripts/dockerlint.sh checks this file
# without a Docker engine; scripts/docker_test.sh builds it on a Debian 12 base
# (a CPU-only image: RUNTIME_IMAGE=debian:12, OPENCV_T64= CUDA_LIBS=) and runs
# the demo in it.

# Both base images are build arguments.
# BUILD_IMAGE is Debian 12 (bookworm), on purpose: see the build stage.
ARG BUILD_IMAGE=debian:12
# A CUDA 13.0 runtime needs a host driver of R580 or newer.
# RUNTIME_IMAGE is NVIDIA's CUDA 13.0 + cuDNN 9 runtime image on Ubuntu 24.04.
ARG RUNTIME_IMAGE=nvidia/cuda:13.0.3-cudnn-runtime-ubuntu24.04

# ---------------------------------------------------------------------------
# Debian 12 (bookworm) on purpose, not a newer Debian: bookworm's OpenCV is
# 4.6, the same as Ubuntu 24.04's, so the libopencv_*.so.406 sonames the
# binary records are the ones the runtime stage's packages ship.
# build compiles dettrain, cgo on, against that OpenCV.
FROM ${BUILD_IMAGE} AS build
# golang-go is Debian 12's Go 1.19: too old to build dettrain (and to know
# GOTOOLCHAIN), it only downloads the toolchain below.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      g++ \
      gcc \
      libc6-dev \
      pkg-config \
      libopencv-dev \
      libopenblas-dev \
      golang-go \
 && rm -rf /var/lib/apt/lists/*
# The toolchain is the module golang.org/toolchain@v0.0.1-go<GO_VERSION>.linux-<arch>,
# the one `go` itself downloads for GOTOOLCHAIN, checked against sum.golang.org
# (through the proxy). Behind a TLS-intercepting proxy, give its CA bundle as
# the secret ca-certificates (docker/podman build --secret
# id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt): the two
# downloading steps then trust it (SSL_CERT_FILE) instead of Debian's bundle,
# and it stays out of the image.
# GO_VERSION is go.mod's Go version.
ARG GO_VERSION=1.26.8
# GOPROXY is the proxies the downloads use (without ",direct" only the proxy is asked).
ARG GOPROXY=https://proxy.golang.org,direct
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export SSL_CERT_FILE=/run/secrets/ca-certificates; fi \
 && mod="golang.org/toolchain@v0.0.1-go${GO_VERSION}.linux-$(dpkg --print-architecture)" \
 && cd /tmp \
 && GOPATH=/tmp/bootstrap GO111MODULE=on GOFLAGS=-modcacherw /usr/bin/go mod download "$mod" \
 && cp -r "/tmp/bootstrap/pkg/mod/$mod" /usr/local/go \
 && chmod -R a+x /usr/local/go/bin /usr/local/go/pkg/tool \
 && rm -rf /tmp/bootstrap /root/.cache \
 && DEBIAN_FRONTEND=noninteractive apt-get purge -y --auto-remove golang-go \
 && /usr/local/go/bin/go version
ENV PATH=/usr/local/go/bin:$PATH CGO_ENABLED=1 GOTOOLCHAIN=local
WORKDIR /src
# The modules first, in their own layer: it is rebuilt only when go.mod or
# go.sum change, not at every source edit.
COPY go.mod go.sum ./
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export SSL_CERT_FILE=/run/secrets/ca-certificates; fi \
 && go mod download
COPY . .
# VERSION is what `dettrain version` prints.
ARG VERSION=dev
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-X main.version=${VERSION}" -o /out/dettrain ./cmd/dettrain \
 && /out/dettrain version

# ---------------------------------------------------------------------------
# runtime is CUDA 13 + cuDNN 9 on Ubuntu 24.04 (noble), plus what the binary needs.
FROM ${RUNTIME_IMAGE} AS runtime

# The OpenCV modules the binary links (readelf -d: core, imgproc, imgcodecs,
# dnn, highgui, videoio, video, objdetect, calib3d, features2d, photo), and
# OpenBLAS, which dettrain opens at run time for the CPU GEMM; Open MPI's mpirun
# and libmpi.so.40 (dettrain opens it at run time under mpirun or srun) with the
# ssh client mpirun starts remote ranks through (docs/DISTRIBUTED.md). Built on Debian
# 12, run on Ubuntu 24.04: both ship OpenCV 4.6 as libopencv_*.so.406, so
# every soname the binary needs exists here, and noble's glibc (2.39) and
# libstdc++ (GCC 14) are newer than bookworm's (2.36, GCC 12), which is the
# direction that works.
# The OpenCV package names end in "t64" on Ubuntu 24.04 (the 64-bit time_t
# transition), in nothing on Debian 12 (libopencv-core406).
# OPENCV_T64 is that ending: "t64", or empty for a Debian 12 base.
ARG OPENCV_T64=t64
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopencv-core406${OPENCV_T64} \
      libopencv-imgproc406${OPENCV_T64} \
      libopencv-imgcodecs406${OPENCV_T64} \
      libopencv-dnn406${OPENCV_T64} \
      libopencv-highgui406${OPENCV_T64} \
      libopencv-videoio406${OPENCV_T64} \
      libopencv-video406${OPENCV_T64} \
      libopencv-objdetect406${OPENCV_T64} \
      libopencv-calib3d406${OPENCV_T64} \
      libopencv-features2d406${OPENCV_T64} \
      libopencv-photo406${OPENCV_T64} \
      libopenblas0 \
      openmpi-bin openssh-client \
 && rm -rf /var/lib/apt/lists/*

# cuBLAS (libcublas-13-0), NVRTC (cuda-nvrtc-13-0, a dependency of the base
# image's cuda-libraries-13-0) and cuDNN 9 (libcudnn9-cuda-13) come with the
# base image. The build stops here unless the loader finds every library
# dettrain opens by soname: those of CUDA_LIBS and OpenBLAS. libcuda.so.1 is
# in no image: the NVIDIA container toolkit mounts the host driver's copy at
# `docker run --gpus ...`.
# CUDA_LIBS are the CUDA sonames checked: empty for a CPU-only image on a base without CUDA.
ARG CUDA_LIBS="libcublas.so.13 libcublasLt.so.13 libcudnn.so.9 libnvrtc.so.13"
RUN for so in ${CUDA_LIBS} libopenblas.so.0; do \
      ldconfig -p | grep -qF "$so (" || { echo "runtime image: the loader does not find $so" >&2; exit 1; }; \
    done

# The user: uid/gid 1000 by default, the first user on most Linux hosts, so
# files written to bind mounts belong to them (Ubuntu's own "ubuntu" user of
# that uid is removed). For another owner build with --build-arg
# DETTRAIN_UID=$(id -u) --build-arg DETTRAIN_GID=$(id -g), or run with --user.
# DETTRAIN_UID and DETTRAIN_GID are the ids of the user "dettrain".
ARG DETTRAIN_UID=1000
ARG DETTRAIN_GID=1000
# /opt/dettrain mirrors the repository's layout, so the README's commands and
# the configs' relative paths work unchanged: configs/ is a copy of the
# repository's, demo -> /data and runs -> /runs (the two volumes), and
# ../shared of the BCCD configs is /opt/shared (mount ../shared there).
RUN (userdel --remove ubuntu 2>/dev/null || true) \
 && (groupdel ubuntu 2>/dev/null || true) \
 && groupadd --gid "${DETTRAIN_GID}" dettrain \
 && useradd --uid "${DETTRAIN_UID}" --gid dettrain --create-home --shell /usr/sbin/nologin dettrain \
 && mkdir -p /data /runs /opt/dettrain \
 && chown dettrain:dettrain /data /runs \
 && ln -s /data /opt/dettrain/demo \
 && ln -s /runs /opt/dettrain/runs
COPY configs /opt/dettrain/configs
COPY --from=build /out/dettrain /usr/local/bin/dettrain

USER dettrain
WORKDIR /opt/dettrain
# Compiled CUDA kernels are cached on the runs volume, so a new container
# does not compile them again.
ENV DETTRAIN_CACHE=/runs/.cache
VOLUME ["/data", "/runs"]
ENTRYPOINT ["dettrain"]
CMD ["--help"]
