package storage_test

import (
	"context"
	"fmt"
	"log"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/storage"
)

// Open a store by URL and close what it opened. With
// import _ "github.com/smartratelimit/smartratelimit/sqlitelimit" the same
// call takes "sqlite:///rate_limits.db".
func ExampleOpen() {
	backend, closer, err := storage.Open("memory://")
	if err != nil {
		log.Fatal(err)
	}
	defer closer.Close()
	d, err := backend.Acquire(context.Background(), srl.Request{Key: "api.example.com", N: 1, Limits: []srl.Limit{srl.PerSecond(10)}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Allowed)
	// Output: true
}

func ExampleParse() {
	t, err := storage.Parse("sqlite:////var/lib/app/rate_limits.db")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Kind == storage.KindSQLite, t.Path)
	_, err = storage.Parse("redis://:hunter2@cache:notaport")
	fmt.Println(err)
	// Output:
	// true /var/lib/app/rate_limits.db
	// storage: bad URL "redis://xxxxx@cache:notaport": invalid port ":notaport" after host
}
