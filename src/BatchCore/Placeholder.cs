namespace BatchCore;
internal static class Placeholder { }
