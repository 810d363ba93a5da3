select $rider.rider_id as station_id, 1 as rides;
