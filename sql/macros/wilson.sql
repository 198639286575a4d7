-- macros every model calls for the 95% Wilson score interval of k failures in n (CONTRACT.md)
-- k failures in n: centre (k + z²/2) / (n + z²), half-width z·sqrt(k(n−k)/n + z²/4) / (n + z²).
-- NULL when n = 0; clamped to [0, 1] so rounding at k = 0 or k = n never leaves the range.
create or replace macro wilson_z() as 1.959963984540054;

create or replace macro wilson_bound(k, n, side) as
case
    when n > 0
        then least(1.0, greatest(0.0, (
            cast(k as double) + wilson_z() ** 2 / 2
            + side * wilson_z() * sqrt(
                cast(k as double) * (n - k) / n + wilson_z() ** 2 / 4
            )
        ) / (n + wilson_z() ** 2)))
end;

create or replace macro wilson_low(k, n) as wilson_bound(k, n, -1);

create or replace macro wilson_high(k, n) as wilson_bound(k, n, 1);
