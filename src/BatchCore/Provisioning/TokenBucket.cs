using System.Diagnostics;

namespace BatchCore.Provisioning;

/// <summary>
/// A launch-rate token bucket on the engine's clock (virtual or real): full at start, refilled continuously.
/// Owned by the scheduling loop; no locks.
/// </summary>
internal sealed class TokenBucket
{
    private readonly double _capacity;
    private readonly double _perMs;
    private double _tokens;
    private long _lastMs;

    public TokenBucket(TokenBucketOptions options, long nowMs)
    {
        Debug.Assert(options.Capacity > 0 && options.RefillPerSecond > 0, "validated options");
        _capacity = options.Capacity;
        _perMs = options.RefillPerSecond / 1000.0;
        _tokens = _capacity;
        _lastMs = nowMs;
    }

    /// <summary>Tokens available now (fractional).</summary>
    public double Available(long nowMs)
    {
        Refill(nowMs);
        return _tokens;
    }

    /// <summary>Takes one token if there is one.</summary>
    public bool TryTake(long nowMs)
    {
        Refill(nowMs);
        if (_tokens < 1)
        {
            return false;
        }

        _tokens -= 1;
        return true;
    }

    /// <summary>When the next whole token is there.</summary>
    public long NextTokenAtMs(long nowMs)
    {
        Refill(nowMs);
        return _tokens >= 1 ? nowMs : nowMs + (long)Math.Ceiling((1 - _tokens) / _perMs);
    }

    private void Refill(long nowMs)
    {
        if (nowMs > _lastMs)
        {
            _tokens = Math.Min(_capacity, _tokens + ((nowMs - _lastMs) * _perMs));
            _lastMs = nowMs;
        }
    }
}
