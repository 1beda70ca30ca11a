module dfws.bench/wsgen

go 1.23
