using System.Runtime.CompilerServices;

namespace BatchCore.Placement.Packing;

/// <summary>
/// An offline vector bin-packing instance: <see cref="ItemCount"/> items, each a demand vector of
/// <see cref="Dimensions"/> non-negative integers, to be packed into identical bins of <see cref="Capacity"/>.
/// A job's (vCPU, memory MiB, GPU) request is one item; a host shape is the bin.
/// </summary>
public sealed class PackingProblem
{
    private readonly long[] _capacity;
    private readonly long[] _demands;

    /// <summary>Validates and copies the instance.</summary>
    /// <param name="capacity">The bin capacity, one value per dimension; every value must be positive.</param>
    /// <param name="demands">Item demands, item-major: item <c>i</c>, dimension <c>k</c> is at <c>i * d + k</c>.</param>
    /// <exception cref="BatchClientException">The shape is wrong, a value is out of range, or an item does not fit an empty bin.</exception>
    public PackingProblem(ReadOnlySpan<long> capacity, ReadOnlySpan<long> demands)
    {
        if (capacity.Length == 0)
        {
            throw new BatchClientException("capacity must have at least one dimension");
        }

        for (var k = 0; k < capacity.Length; k++)
        {
            if (capacity[k] <= 0)
            {
                throw new BatchClientException($"capacity[{k}] must be positive, was {capacity[k]}");
            }
        }

        if (demands.Length % capacity.Length != 0)
        {
            throw new BatchClientException(
                $"demands length must be a multiple of the {capacity.Length} dimensions, was {demands.Length}");
        }

        var d = capacity.Length;
        var n = demands.Length / d;
        for (var i = 0; i < n; i++)
        {
            for (var k = 0; k < d; k++)
            {
                var v = demands[(i * d) + k];
                if (v < 0 || v > capacity[k])
                {
                    ThrowDoesNotFit(i, k, v, capacity[k]);
                }
            }
        }

        _capacity = capacity.ToArray();
        _demands = demands.ToArray();
        Dimensions = d;
        ItemCount = n;
    }

    /// <summary>The number of dimensions d (1 for classic bin packing).</summary>
    public int Dimensions { get; }

    /// <summary>The number of items n.</summary>
    public int ItemCount { get; }

    /// <summary>The bin capacity, length <see cref="Dimensions"/>.</summary>
    public ReadOnlySpan<long> Capacity => _capacity;

    /// <summary>All demands, item-major, length <see cref="ItemCount"/> × <see cref="Dimensions"/>.</summary>
    public ReadOnlySpan<long> Demands => _demands;

    /// <summary>The demand vector of item <paramref name="item"/>.</summary>
    public ReadOnlySpan<long> Demand(int item) => _demands.AsSpan(item * Dimensions, Dimensions);

    /// <summary>A 1-D problem: one capacity and one size per item.</summary>
    public static PackingProblem OneDimensional(long capacity, ReadOnlySpan<long> sizes) => new([capacity], sizes);

    internal long[] CapacityArray => _capacity;

    internal long[] DemandArray => _demands;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDoesNotFit(int item, int dimension, long value, long capacity) =>
        throw new BatchClientException(value < 0
            ? $"demands item {item} dimension {dimension} must not be negative, was {value}"
            : $"demands item {item} dimension {dimension} does not fit a bin: {value} > capacity {capacity}");
}
