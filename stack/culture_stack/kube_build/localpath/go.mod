// A build-only module for local-path-provisioner, the default StorageClass of the local node (as kind
// has it). Separate from the other build modules so that none can move another's dependency versions.
module culture.dev/stack/kubebuild/localpath

go 1.23.0

require github.com/rancher/local-path-provisioner v0.0.30
