// Command faultbroker runs the embedded broker alone, as its own process, so
// the fault tests of services/devstack can kill it with SIGKILL and restart
// it on the same data dir and port. It is built by those tests only
// (testdata is outside ./...).
//
//	faultbroker ADDR DATA_DIR
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sendguard/sendguard/pkg/kafka/embedded"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: faultbroker ADDR DATA_DIR")
		os.Exit(2)
	}
	b, err := embedded.Start(embedded.Config{Addr: os.Args[1], DataDir: os.Args[2], Partitions: 4})
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultbroker:", err)
		os.Exit(1)
	}
	fmt.Println("listening", b.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	b.Close()
}
