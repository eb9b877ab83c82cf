"""A real single-node Kubernetes cluster on this machine, on top of the local stack's control plane.

`culture cluster up` adds what the control plane lacks to run pods: containerd (+ runc, the bridge
CNI plugins), a local image registry, kubelet, kube-scheduler and kube-proxy (built from the same
`k8s.io/kubernetes` module and version as the API server), cluster DNS, and a host-local gateway
address through which pods reach the API server and the stack's servers. Everything it starts is
tracked by pid files under the state directory; `culture cluster down` stops exactly that and removes
the interfaces and iptables rules it added.
"""
