// shop: the bundled demo workload for `cargo xtask demo`. A small web shop
// without the web: shoppers browse a catalogue, fill carts and check out,
// while a flash sale makes one product far hotter than the rest.
package main

import (
	"fmt"
	"math/rand"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const products = 500

// The flash-sale product: a third of all browsing lands on it.
const flashSale = "sku-1337"

type catalogue struct {
	mu     sync.RWMutex
	prices map[string]int
}

func (c *catalogue) price(sku string) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.prices[sku]
}

type inventory struct {
	mu    sync.Mutex
	stock map[string]int
}

func (inv *inventory) take(sku string) bool {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.stock[sku] <= 0 {
		inv.stock[sku] = 1000 // restock
	}
	inv.stock[sku]--
	return true
}

func sku(n int) string { return "sku-" + strconv.Itoa(n) }

func shopper(id int, cat *catalogue, inv *inventory, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewSource(int64(id)))
	cart := make(map[string]int)
	for {
		select {
		case <-stop:
			return
		default:
		}
		product := sku(rng.Intn(products))
		if rng.Intn(3) == 0 {
			product = flashSale
		}
		if cat.price(product) > 0 {
			cart[product]++
		}
		if len(cart) >= 5 {
			for item := range cart {
				inv.take(item)
				delete(cart, item)
			}
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func main() {
	cat := &catalogue{prices: make(map[string]int)}
	inv := &inventory{stock: make(map[string]int)}
	for n := 0; n < products; n++ {
		cat.prices[sku(n)] = 100 + n
		inv.stock[sku(n)] = 1000
	}
	cat.prices[flashSale] = 1

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := 0; id < 8; id++ {
		wg.Add(1)
		go shopper(id, cat, inv, stop, &wg)
	}
	fmt.Println("ready")

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-signals:
	case <-time.After(10 * time.Minute):
	}
	close(stop)
	wg.Wait()
}
