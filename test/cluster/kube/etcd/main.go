// Command etcd is etcd's own server (go.etcd.io/etcd/server/v3, at the version k8s.io/kubernetes
// pins), built here so the cluster lab's kube-apiserver has a real store.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
