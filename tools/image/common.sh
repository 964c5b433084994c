# Shared by the image scripts: buildah/podman with settings that work as root in a container or VM
# without a daemon. vfs storage needs no overlay support from the kernel (overlay-on-overlay fails
# in many sandboxes); MERGEWAY_IMAGE_STORAGE=overlay is faster where it works.
storage_driver=${MERGEWAY_IMAGE_STORAGE:-vfs}
# crun (podman's default) refuses hybrid cgroup v1/v2 hosts ("cgroups in hybrid mode not supported");
# runc handles them.
if [[ -d /sys/fs/cgroup/unified ]] && command -v runc >/dev/null 2>&1; then
  oci_runtime=runc
else
  oci_runtime=crun
fi
buildah_() { buildah --storage-driver "$storage_driver" "$@"; }
podman_() {
  podman --storage-driver "$storage_driver" --runtime "$oci_runtime" --cgroup-manager cgroupfs \
    --events-backend file "$@"
}
# Resource limits for `podman run`: podman's defaults exceed the hard limits of a sandbox without
# CAP_SYS_RESOURCE, where raising them fails (setrlimit: Operation not permitted).
run_limits=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
