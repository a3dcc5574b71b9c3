namespace BatchCore.Validation;

/// <summary>Fargate's valid task sizes (AWS §2.6).</summary>
public static class FargateSizes
{
    /// <summary>The valid (vCPU, memory MiB) pairs, smallest first.</summary>
    public static IReadOnlyList<(double Vcpus, int MemoryMiB)> All { get; } = Build();

    /// <summary>Whether the pair is a valid Fargate size.</summary>
    public static bool IsValid(double vcpus, int memoryMiB)
    {
        foreach (var (v, m) in All)
        {
            if (Math.Abs(v - vcpus) < 1e-9 && m == memoryMiB)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The smallest valid size covering the request (by vCPU, then memory), or null if none.</summary>
    public static (double Vcpus, int MemoryMiB)? SmallestCovering(double vcpus, int memoryMiB)
    {
        foreach (var s in All)
        {
            if (s.Vcpus + 1e-9 >= vcpus && s.MemoryMiB >= memoryMiB)
            {
                return s;
            }
        }

        return null;
    }

    /// <summary>A human description of the valid memory values for a vCPU value.</summary>
    public static string Describe(double vcpus)
    {
        var list = new List<int>();
        foreach (var (v, m) in All)
        {
            if (Math.Abs(v - vcpus) < 1e-9)
            {
                list.Add(m);
            }
        }

        return list.Count == 0
            ? "VCPU must be one of 0.25, 0.5, 1, 2, 4, 8, 16 on Fargate"
            : $"MEMORY for {vcpus} VCPU on Fargate must be one of {string.Join(", ", list)}";
    }

    private static List<(double, int)> Build()
    {
        var l = new List<(double, int)>();
        void Range(double v, int from, int to, int step)
        {
            for (var m = from; m <= to; m += step)
            {
                l.Add((v, m));
            }
        }

        l.Add((0.25, 512));
        l.Add((0.25, 1024));
        l.Add((0.25, 2048));
        Range(0.5, 1024, 4096, 1024);
        Range(1, 2048, 8192, 1024);
        Range(2, 4096, 16384, 1024);
        Range(4, 8192, 30720, 1024);
        Range(8, 16384, 61440, 4096);
        Range(16, 32768, 122880, 8192);
        l.Sort((a, b) => a.Item1 != b.Item1 ? a.Item1.CompareTo(b.Item1) : a.Item2.CompareTo(b.Item2));
        return l;
    }
}
