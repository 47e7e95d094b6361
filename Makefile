# racelab — needs only python3 and GNU make; everything else goes in .venv.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

RUN_ARGS     ?=
EXPLORE_ARGS ?=
PYTEST_ARGS  ?=

.DEFAULT_GOAL := test
.PHONY: setup proto proto-check run explore test bench clean

# The venv is (re)built only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --quiet --upgrade pip
	$(PY) -m pip install --disable-pip-version-check --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

# Regenerate racelab/v1/ from proto/racelab/v1/*.proto.
proto: setup
	$(PY) tools/gen_proto.py

# Fail if the generated code in the tree is not what the .proto files produce.
proto-check: setup
	$(PY) tools/gen_proto.py --check

run: setup
	$(VENV)/bin/racelab run $(RUN_ARGS)

explore: setup
	$(VENV)/bin/racelab explore $(EXPLORE_ARGS)

test: setup proto-check
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup
	@set -e; benches='$(sort $(wildcard bench/*.py))'; \
	if [ -z "$$benches" ]; then echo "no benchmarks under bench/"; fi; \
	for b in $$benches; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# ---- Kubernetes (kind): docs/kubernetes.md --------------------------------------------------
# make k8s-up      cluster + image + apply + wait (K8S_OVERLAY=observability|scaled|base)
# make k8s-run     follow the scenario Job to its end; its log and summary go to runs/k8s-<time>/
# make k8s-open    show (and try to open) Grafana, Prometheus and Jaeger
# make k8s-down    delete the cluster
# make k8s-render  render every overlay and validate it offline (what CI checks: tests/deploy)
# Kustomize may not read files outside a kustomization's root by default; the overlays read the
# very scenario, Prometheus and Grafana files of a local run, so every render here passes
# --load-restrictor LoadRestrictionsNone.
K8S_CLUSTER  ?= racelab
K8S_OVERLAY  ?= observability
K8S_LEAD     ?= 60
K8S_SEED     ?=
K8S_FIXES    ?=
K8S_VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
K8S_IMAGE    := racelab:$(K8S_VERSION)
K8S_GEN      := deploy/k8s/base/generated
KUBECTL      ?= $(shell command -v kubectl || echo $(VENV)/bin/kubectl)
K8S_RENDER    = $(VENV)/bin/kubectl kustomize --load-restrictor LoadRestrictionsNone
K8S_NS       := $(KUBECTL) --context kind-$(K8S_CLUSTER) -n racelab

.PHONY: k8s-tools k8s-cluster k8s-image k8s-generate k8s-apply k8s-wait k8s-up k8s-run k8s-open k8s-down k8s-render

k8s-tools:
	@for t in docker kind $(KUBECTL); do command -v $$t >/dev/null || { echo "k8s: $$t not found (docs/kubernetes.md lists what to install)"; exit 2; }; done

k8s-cluster: k8s-tools
	kind get clusters | grep -qx '$(K8S_CLUSTER)' || kind create cluster --name $(K8S_CLUSTER) --config deploy/kind/cluster.yaml

k8s-image: k8s-tools
	docker build -f deploy/Dockerfile -t $(K8S_IMAGE) .
	kind load docker-image $(K8S_IMAGE) --name $(K8S_CLUSTER)

# One run's clock and credentials. Every pod reads RACELAB_WALL_START: simulated 23:30 PDT begins
# K8S_LEAD seconds after this, time for the pods to start; a new apply is a new run.
k8s-generate: setup
	rm -rf $(K8S_GEN)/credentials $(K8S_GEN)/run.env
	$(PY) -m services.runtime.credentials $(K8S_GEN)/credentials --scenario oct-2025
	echo "RACELAB_WALL_START=$$(( $$(date +%s) + $(K8S_LEAD) ))" > $(K8S_GEN)/run.env
	$(if $(K8S_SEED),echo "RACELAB_SEED=$(K8S_SEED)" >> $(K8S_GEN)/run.env)
	$(if $(K8S_FIXES),echo "RACELAB_FIXES=$(K8S_FIXES)" >> $(K8S_GEN)/run.env)

# A fresh namespace each time: the authority's zones and the planner's plans are durable, and a
# new run must not start from the last one's.
k8s-apply: k8s-tools setup
	$(KUBECTL) --context kind-$(K8S_CLUSTER) delete namespace racelab --ignore-not-found --wait
	$(MAKE) --no-print-directory k8s-generate
	$(K8S_RENDER) deploy/k8s/$(if $(filter base,$(K8S_OVERLAY)),base,overlays/$(K8S_OVERLAY)) \
		| $(KUBECTL) --context kind-$(K8S_CLUSTER) apply -f -

k8s-wait:
	for s in authority planner dynamodb-lb; do $(K8S_NS) rollout status statefulset/$$s --timeout=300s || exit 1; done
	$(K8S_NS) wait --for=condition=Available deployment --all --timeout=300s

k8s-up: k8s-cluster k8s-image k8s-apply k8s-wait
	@echo "racelab is running; next: make k8s-run (follows the scenario), make k8s-open (dashboards)"

k8s-run:
	@out=runs/k8s-$$(date +%Y%m%d-%H%M%S); mkdir -p $$out; \
	$(K8S_NS) wait --for=condition=Ready pod -l job-name=scenario --timeout=300s; \
	$(K8S_NS) logs -f job/scenario | tee $$out/follow.log; \
	$(K8S_NS) wait --for=condition=Complete job/scenario --timeout=60s; \
	sed -n '/^{/,$$p' $$out/follow.log > $$out/summary.json; echo "summary: $$out/summary.json"

k8s-open:
	@echo "Grafana     http://127.0.0.1:3000"; echo "Prometheus  http://127.0.0.1:9090"; echo "Jaeger      http://127.0.0.1:16686"
	@opener=$$(command -v xdg-open || command -v open || true); [ -z "$$opener" ] || $$opener http://127.0.0.1:3000

k8s-down: k8s-tools
	kind delete cluster --name $(K8S_CLUSTER)

k8s-render: setup
	$(VENV)/bin/pytest tests/deploy -q

# ---- The image without a registry: docs/kubernetes.md ----------------------------------------
# make image-local   racelab:<version> built from deploy/Dockerfile with --network none: on a Debian
#                    bookworm base made by mmdebstrap from this machine's apt sources (Debian's
#                    Python 3.11.2 at /usr/bin/python3), its packages from deploy/wheelhouse/
#                    (pip download of deploy/requirements-image.txt); with podman, else Docker.
# tests/deploy/test_pods.py runs it, then the base overlay's pods under podman.
IMAGE_ENGINE ?= $(if $(shell command -v podman),podman,docker)
IMAGE_DIR    := build/image
IMAGE_BASE   := localhost/racelab-base:bookworm
APT_SOURCES  ?= /etc/apt/sources.list.d/debian.sources
WHEELHOUSE   := deploy/wheelhouse
# The wheels the base's Python takes: CPython 3.11, glibc 2.36 (bookworm) or older.
WHEEL_ARCH    = $(shell uname -m)
WHEEL_TAGS    = --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
	$(foreach p,manylinux1 manylinux2010 manylinux2014 $(foreach v,$(shell seq 5 36),manylinux_2_$(v)),--platform $(p)_$(WHEEL_ARCH))
.PHONY: image-local image-base
image-local image-base: export CONTAINERS_CONF := $(CURDIR)/deploy/podman/containers.conf

$(IMAGE_DIR)/base.tar: $(APT_SOURCES)
	mkdir -p $(IMAGE_DIR)
	mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm $(IMAGE_DIR)/part.tar - < $(APT_SOURCES)
	mv $(IMAGE_DIR)/part.tar $@

image-base: $(IMAGE_DIR)/base.tar
	$(IMAGE_ENGINE) image inspect $(IMAGE_BASE) >/dev/null 2>&1 && [ $(IMAGE_DIR)/base.imported -nt $< ] || \
		{ $(IMAGE_ENGINE) import --change 'CMD ["/bin/bash"]' $< $(IMAGE_BASE) && touch $(IMAGE_DIR)/base.imported; }

$(WHEELHOUSE)/.complete: deploy/requirements-image.txt | setup
	find $(WHEELHOUSE) -name '*.whl' -delete
	$(PY) -m pip download --disable-pip-version-check --quiet --no-deps $(WHEEL_TAGS) -d $(WHEELHOUSE) -r $<
	touch $@

image-local: image-base $(WHEELHOUSE)/.complete
	$(IMAGE_ENGINE) build --network none -f deploy/Dockerfile $(if $(filter podman,$(IMAGE_ENGINE)),--ignorefile deploy/Dockerfile.dockerignore) \
		--build-arg BASE_IMAGE=$(IMAGE_BASE) --build-arg PYTHON=/usr/bin/python3 --build-arg PIP_FROM=wheelhouse \
		-t $(K8S_IMAGE) .

# ---- The base's pods under podman, no cluster (deploy/podman/kubelet.py; as root) --------------
# make pods-up     image-local, a new clock (PODS_LEAD s ahead) and credentials, the base rendered,
#                  every pod played on the podman network racelab-pods and probed until ready
# make pods-run    the scenario Job's output (racelab follow) to its end
# make pods-down   every pod and the network removed
PODS_DIR  := build/pods
PODS_LEAD ?= 120
.PHONY: pods-up pods-run pods-down
pods-up: export CONTAINERS_CONF := $(CURDIR)/deploy/podman/containers.conf
pods-up: image-local
	$(PY) deploy/podman/kubelet.py down --workdir $(PODS_DIR)
	$(MAKE) --no-print-directory k8s-generate K8S_LEAD=$(PODS_LEAD)
	mkdir -p $(PODS_DIR) && $(K8S_RENDER) deploy/k8s/base > $(PODS_DIR)/base.yaml
	$(PY) deploy/podman/kubelet.py up $(PODS_DIR)/base.yaml --workdir $(PODS_DIR) --timeout $(PODS_LEAD)

pods-run:
	$(PY) deploy/podman/kubelet.py logs --follow --workdir $(PODS_DIR) scenario

pods-down:
	$(PY) deploy/podman/kubelet.py down --workdir $(PODS_DIR)
