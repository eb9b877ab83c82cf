// A build-only module for CoreDNS, the cluster DNS of the local node (deployed as kind deploys it).
// Separate from the other build modules so that none can move another's dependency versions.
module culture.dev/stack/kubebuild/coredns

go 1.26.0

require github.com/coredns/coredns v1.15.0 // indirect
